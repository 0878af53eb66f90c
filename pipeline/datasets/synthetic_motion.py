"""Physics of the synthetic paired dataset: one rigid textured disc moving in front of a camera.

World frame (metres): a static pinhole camera sits at the origin looking along +z; x points
right in the image, y up, z away from the camera (depth). Gravity is ``(0, -G, 0)``.

The body frame is attached to the disc: at rest its x axis points right, y up and z along
the viewing axis, and the disc lies in its x-y plane. The orientation (body -> world) is
``R = Rz(psi) @ Rx(tilt_x) @ Ry(tilt_y)``; ``psi`` is the rotation seen in the image plane.

The IMU sits at the disc centre with the body axes. Its noise-free reading is physical:
accelerometer = specific force ``R^T (a_world - g_world)`` in m/s^2, gyroscope = body angular
velocity in rad/s, both from central differences of the analytic pose (step ``H_S``), so
every class's signal is the derivative of the motion drawn in the video, not a template.

Each class is a pose function of its parameters; every recording draws new amplitudes,
frequencies, phases, directions, centre position, disc radius and a slow orientation wobble.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

G = 9.80665  # standard gravity, m/s^2
G_WORLD = np.array([0.0, -G, 0.0])  # (3,) gravity in the world frame, m/s^2
H_S = 1e-3  # finite-difference step, s
TAU = 2.0 * np.pi

Params = Mapping[str, float]
PoseFn = Callable[[Params, np.ndarray], tuple[np.ndarray, np.ndarray]]

# Parameters every recording draws: centre (m), disc radius (m), slow orientation wobble.
_COMMON: dict[str, tuple[float, float]] = {
    "centre_x_m": (-0.25, 0.25),
    "centre_y_m": (-0.15, 0.15),
    "centre_z_m": (2.3, 2.8),
    "radius_m": (0.22, 0.3),
    **{f"wobble_{a}_rad": (0.03, 0.15) for a in ("psi", "tx", "ty")},
    **{f"wobble_{a}_hz": (0.1, 0.4) for a in ("psi", "tx", "ty")},
    **{f"wobble_{a}_phase_rad": (0.0, TAU) for a in ("psi", "tx", "ty")},
}

# Per-class parameter ranges (uniform); keys ending in "direction" are drawn from {-1, +1}.
_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "circle": {"amp_x_m": (0.3, 0.5), "amp_z_m": (0.3, 0.5), "freq_hz": (0.3, 0.6),
               "phase_rad": (0.0, TAU), "direction": (-1, 1)},
    "bounce": {"height_m": (0.25, 0.45), "freq_hz": (0.7, 1.3), "softness": (0.1, 0.2),
               "phase_rad": (0.0, TAU)},
    "swing": {"length_m": (0.6, 1.0), "angle_rad": (0.3, 0.6), "freq_hz": (0.4, 0.8),
              "phase_rad": (0.0, TAU)},
    "spin": {"rate_rad_s": (2.0, 4.0), "modulation_rad": (0.1, 0.5), "mod_freq_hz": (0.2, 0.5),
             "phase_rad": (0.0, TAU), "direction": (-1, 1)},
    "figure_eight": {"amp_x_m": (0.3, 0.5), "amp_y_m": (0.2, 0.35), "freq_hz": (0.25, 0.5),
                     "phase_rad": (0.0, TAU)},
    "forward_back": {"amp_z_m": (0.5, 0.9), "freq_hz": (0.3, 0.7), "phase_rad": (0.0, TAU)},
    "shake": {"amp_m": (0.04, 0.09), "freq_hz": (2.5, 4.0), "twist_rad": (0.05, 0.2),
              "phase_rad": (0.0, TAU)},
}


def _zeros(t: np.ndarray) -> np.ndarray:
    return np.zeros((len(t), 3))


def _circle(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal circle (ellipse) in the x-z plane: moves left-right and nearer-farther."""
    ph = TAU * p["freq_hz"] * t + p["phase_rad"]
    pos = np.stack([p["amp_x_m"] * np.cos(ph), 0.0 * t,
                    p["direction"] * p["amp_z_m"] * np.sin(ph)], axis=-1)
    return pos, _zeros(t)


def _bounce(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertical bounce: smoothed |sin|, sharp turn (large upward force) at the bottom."""
    eps = p["softness"]
    s = np.sqrt(np.sin(np.pi * p["freq_hz"] * t + p["phase_rad"]) ** 2 + eps**2)
    y = p["height_m"] * ((s - eps) / (np.sqrt(1.0 + eps**2) - eps) - 0.5)
    return np.stack([0.0 * t, y, 0.0 * t], axis=-1), _zeros(t)


def _swing(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pendulum swing in the image plane; the disc turns with the rod."""
    theta = p["angle_rad"] * np.sin(TAU * p["freq_hz"] * t + p["phase_rad"])
    length = p["length_m"]
    pos = np.stack([length * np.sin(theta), length * (1.0 - np.cos(theta)) - 0.1, 0.0 * t], -1)
    ang = _zeros(t)
    ang[:, 0] = theta
    return pos, ang


def _spin(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spin in place about the viewing axis at a slowly modulated rate."""
    mod = p["modulation_rad"] * np.sin(TAU * p["mod_freq_hz"] * t)
    ang = _zeros(t)
    ang[:, 0] = p["direction"] * (p["rate_rad_s"] * t + mod) + p["phase_rad"]
    return _zeros(t), ang


def _figure_eight(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lissajous figure-eight in the image plane."""
    ph = TAU * p["freq_hz"] * t + p["phase_rad"]
    pos = np.stack([p["amp_x_m"] * np.sin(ph), 0.5 * p["amp_y_m"] * np.sin(2.0 * ph), 0.0 * t], -1)
    return pos, _zeros(t)


def _forward_back(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Towards and away from the camera: the apparent size changes."""
    z = p["amp_z_m"] * np.sin(TAU * p["freq_hz"] * t + p["phase_rad"])
    return np.stack([0.0 * t, 0.0 * t, z], axis=-1), _zeros(t)


def _shake(p: Params, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fast small side-to-side shake with a twist at the same frequency."""
    ph = TAU * p["freq_hz"] * t + p["phase_rad"]
    pos = np.stack([p["amp_m"] * np.sin(ph), 0.25 * p["amp_m"] * np.sin(2.0 * ph), 0.0 * t], -1)
    ang = _zeros(t)
    ang[:, 0] = p["twist_rad"] * np.sin(ph + 0.5)
    return pos, ang


MOTIONS: dict[str, PoseFn] = {
    "circle": _circle,
    "bounce": _bounce,
    "swing": _swing,
    "spin": _spin,
    "figure_eight": _figure_eight,
    "forward_back": _forward_back,
    "shake": _shake,
}

CLASSES: tuple[str, ...] = tuple(MOTIONS)


def sample_params(label: str, rng: np.random.Generator) -> dict[str, float]:
    """Draw one recording's motion parameters (common keys + the class's keys)."""
    ranges = {**_COMMON, **_RANGES[label]}
    params: dict[str, float] = {}
    for key, (lo, hi) in ranges.items():
        if key.endswith("direction"):
            params[key] = float(rng.choice([-1.0, 1.0]))
        else:
            params[key] = float(rng.uniform(lo, hi))
    return params


def rotation(angles: np.ndarray) -> np.ndarray:
    """(T, 3) angles (psi, tilt_x, tilt_y) in rad -> (T, 3, 3) ``Rz(psi) Rx(tx) Ry(ty)``."""
    cz, sz = np.cos(angles[:, 0]), np.sin(angles[:, 0])
    cx, sx = np.cos(angles[:, 1]), np.sin(angles[:, 1])
    cy, sy = np.cos(angles[:, 2]), np.sin(angles[:, 2])
    one, zero = np.ones_like(cz), np.zeros_like(cz)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    return rz @ rx @ ry


@dataclass(frozen=True)
class Trajectory:
    """The analytic pose of one recording's disc on the canonical clock (video frame 0 = 0 s)."""

    label: str
    params: dict[str, float]

    def angles(self, t_s: np.ndarray) -> np.ndarray:
        """(T,) s -> (T, 3) (psi, tilt_x, tilt_y) in rad, class motion plus wobble."""
        t = np.asarray(t_s, dtype=np.float64)
        _, ang = MOTIONS[self.label](self.params, t)
        p = self.params
        for i, a in enumerate(("psi", "tx", "ty")):
            ph = TAU * p[f"wobble_{a}_hz"] * t + p[f"wobble_{a}_phase_rad"]
            ang[:, i] += p[f"wobble_{a}_rad"] * np.sin(ph)
        return ang

    def pose(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T,) s -> position (T, 3) in m (world) and orientation (T, 3, 3) body -> world."""
        t = np.asarray(t_s, dtype=np.float64)
        offset, _ = MOTIONS[self.label](self.params, t)
        p = self.params
        centre = np.array([p["centre_x_m"], p["centre_y_m"], p["centre_z_m"]])
        return centre + offset, rotation(self.angles(t))

    def motion(self, t_s: np.ndarray) -> np.ndarray:
        """(T,) s -> (T, 6) noise-free IMU: specific force (m/s^2), angular velocity (rad/s).

        Both in the body frame, from central differences of the pose at step ``H_S``.
        """
        t = np.asarray(t_s, dtype=np.float64)
        pos_m, rot_m = self.pose(t - H_S)
        pos_0, rot_0 = self.pose(t)
        pos_p, rot_p = self.pose(t + H_S)
        acc_world = (pos_p - 2.0 * pos_0 + pos_m) / H_S**2  # (T, 3)
        force_body = np.einsum("tji,tj->ti", rot_0, acc_world - G_WORLD)  # R^T (a - g)
        omega_skew = np.einsum("tji,tjk->tik", rot_0, rot_p - rot_m) / (2.0 * H_S)  # R^T dR/dt
        gyro = 0.5 * np.stack([omega_skew[:, 2, 1] - omega_skew[:, 1, 2],
                               omega_skew[:, 0, 2] - omega_skew[:, 2, 0],
                               omega_skew[:, 1, 0] - omega_skew[:, 0, 1]], axis=-1)
        return np.concatenate([force_body, gyro], axis=1)
