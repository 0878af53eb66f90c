"""Rendering and H.264 encoding of the synthetic paired dataset's video.

A static pinhole camera (focal length ``size`` px, principal point at the image centre, see
``Camera``) sees the disc of ``synthetic_motion.Trajectory`` in front of a static background.
Each pixel's ray is intersected with the disc's plane, so position, apparent size (depth),
in-plane rotation and tilt all follow the same pose that produces the IMU. The disc has four
saturated quadrants (red, green, blue, yellow, counter-clockwise from the body +x axis), a
black bar along body +x, a white hub and faint rings; the background is muted (low
saturation) so the disc can be segmented by colour saturation.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from comodo.pipeline.datasets.synthetic_motion import Trajectory

# (4, 3) RGB of the quadrants: +x+y, -x+y, -x-y, +x-y in body coordinates
PALETTE = np.array([[220, 40, 40], [40, 190, 60], [50, 80, 220], [230, 200, 40]], np.float32)
BAR_HALF_WIDTH = 0.08  # fraction of the radius
HUB_RADIUS = 0.12  # fraction of the radius
RINGS = 6.0 * np.pi  # three faint rings across the radius (rad per radius)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at the world origin looking along +z; square image of ``size`` px."""

    size: int

    @property
    def focal_px(self) -> float:
        return float(self.size)  # about 53 degrees field of view

    def project(self, pos_m: np.ndarray) -> np.ndarray:
        """(T, 3) world points in m -> (T, 2) pixel coordinates (u right, v down).

        Pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)``; its centre is ``j + 0.5``.
        """
        c = self.size / 2.0
        u = c + self.focal_px * pos_m[:, 0] / pos_m[:, 2]
        v = c - self.focal_px * pos_m[:, 1] / pos_m[:, 2]
        return np.stack([u, v], axis=-1)


SCENES = ("horizontal", "vertical", "checker", "diagonal", "dots", "rings", "plain")


def _scene_pattern(scene: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted multiplicative wall pattern in [0.8, 1.0] for one kind of place; (H, W) float32."""
    period = rng.uniform(0.09, 0.14) * size
    phase = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    waves = {
        "horizontal": np.sin(2 * np.pi * yy / period + phase),
        "vertical": np.sin(2 * np.pi * xx / period + phase),
        "checker": np.sign(np.sin(2 * np.pi * xx / period + phase) * np.sin(2 * np.pi * yy / period)),
        "diagonal": np.sin(2 * np.pi * (xx + yy) / (1.4 * period) + phase),
        "dots": (np.cos(2 * np.pi * xx / period + phase) * np.cos(2 * np.pi * yy / period)) ** 8 * 2 - 1,
        "rings": np.sin(2 * np.pi * np.hypot(xx - size / 2, yy - size / 2) / period + phase),
        "plain": np.zeros((size, size), np.float32),
    }
    return np.round(0.9 + 0.1 * waves[scene], 6).astype(np.float32)


def background(rng: np.random.Generator, size: int, scene: str = "plain") -> np.ndarray:
    """A muted static room (gradient, darker floor, faint grid) with the wall pattern of its
    kind of place (``SCENES``): activities come with their scene, as in egocentric video,
    while the IMU carries only the motion; (H, W, 3) float32."""
    top, bottom = rng.uniform(70, 170, 3), rng.uniform(60, 150, 3)
    top = top.mean() + 0.3 * (top - top.mean())  # keep the saturation low
    bottom = bottom.mean() + 0.3 * (bottom - bottom.mean())
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    img = (1.0 - ramp) * top.astype(np.float32) + ramp * bottom.astype(np.float32)  # (H, 1, 3)
    img = np.broadcast_to(img, (size, size, 3)).copy()
    horizon = int(size * rng.uniform(0.6, 0.75))
    img[:horizon] *= _scene_pattern(scene, rng, size)[:horizon, :, None]
    img[horizon:] *= 0.8
    step = max(8, size // 8)
    offset = int(rng.integers(0, step))
    img[offset::step, :] *= 0.9
    img[:, offset::step] *= 0.9
    return img


def _disc_crops(traj: Trajectory, t_s: np.ndarray, cam: Camera, half: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the disc in a (2*half)^2 crop around its projected centre for every frame.

    Returns the crop origins (F, 2) int (column, row), colours (F, S, S, 3) float32 and
    coverage alpha (F, S, S, 1) float32 in [0, 1].
    """
    pos, rot = traj.pose(t_s)  # (F, 3), (F, 3, 3)
    radius = traj.params["radius_m"]
    f, c = cam.focal_px, cam.size / 2.0
    origin = np.floor(np.round(cam.project(pos), 6)).astype(np.int64) - half  # (F, 2)
    grid = np.arange(2 * half, dtype=np.float64) + 0.5
    dx = ((origin[:, 0, None] + grid - c) / f)[:, None, :]  # (F, 1, S) ray x at z = 1
    dy = (-(origin[:, 1, None] + grid - c) / f)[:, :, None]  # (F, S, 1) ray y at z = 1
    n = rot[:, :, 2]  # (F, 3) disc normal
    n_dot_p = np.einsum("fi,fi->f", n, pos)[:, None, None]  # (F, 1, 1)
    n_dot_d = n[:, 0, None, None] * dx + n[:, 1, None, None] * dy + n[:, 2, None, None]
    depth = n_dot_p / np.where(np.abs(n_dot_d) > 1e-3, n_dot_d, 1e-3)  # (F, S, S) ray z
    rel = [depth * dx - pos[:, 0, None, None], depth * dy - pos[:, 1, None, None],
           depth - pos[:, 2, None, None]]  # world offset from the centre, 3 x (F, S, S)
    bx = sum(rot[:, i, 0, None, None] * rel[i] for i in range(3)) / radius  # body x / radius
    by = sum(rot[:, i, 1, None, None] * rel[i] for i in range(3)) / radius
    rho = np.hypot(bx, by)
    alpha = np.clip((1.0 - rho) * radius * f / depth + 0.5, 0.0, 1.0)
    quadrant = np.where(by >= 0, np.where(bx >= 0, 0, 1), np.where(bx < 0, 2, 3))
    rgb = PALETTE[quadrant]  # (F, S, S, 3)
    shade = (0.7 + 0.3 * np.abs(n[:, 2]))[:, None, None] * (0.9 + 0.1 * np.cos(RINGS * rho))
    rgb = rgb * shade[..., None].astype(np.float32)
    rgb[(bx > 0) & (np.abs(by) < BAR_HALF_WIDTH)] = 20.0
    rgb[rho < HUB_RADIUS] = 240.0
    return origin, rgb, alpha[..., None].astype(np.float32)


def render_frames(traj: Trajectory, t_s: np.ndarray, cam: Camera, bg: np.ndarray) -> np.ndarray:
    """Frames at canonical times ``t_s`` (F,) s -> (F, H, W, 3) uint8 RGB."""
    pos, _ = traj.pose(t_s)
    radius = traj.params["radius_m"]
    half = int(np.ceil(cam.focal_px * radius / max(pos[:, 2].min() - radius, 0.1))) + 2
    frames = np.empty((len(t_s), cam.size, cam.size, 3), np.uint8)
    frames[:] = to_uint8(bg)
    chunk = max(1, 20000 // (half * half))
    for start in range(0, len(t_s), chunk):
        stop = min(start + chunk, len(t_s))
        origin, rgb, alpha = _disc_crops(traj, t_s[start:stop], cam, half)
        for k in range(stop - start):
            _composite(frames[start + k], bg, origin[k], rgb[k], alpha[k])
    return frames


def _composite(frame: np.ndarray, bg: np.ndarray, origin: np.ndarray, rgb: np.ndarray,
               alpha: np.ndarray) -> None:
    """Blend one (S, S, 3) crop at ``origin`` (column, row) over the background, in place.

    ``frame`` (H, W, 3) uint8 already holds the background; ``bg`` is its float32 original.
    """
    size, s = frame.shape[0], rgb.shape[0]
    x0, y0 = int(origin[0]), int(origin[1])
    cx0, cy0 = max(0, -x0), max(0, -y0)
    cx1, cy1 = min(s, size - x0), min(s, size - y0)
    if cx1 <= cx0 or cy1 <= cy0:
        return  # the disc is out of view
    rows, cols = slice(y0 + cy0, y0 + cy1), slice(x0 + cx0, x0 + cx1)
    a = alpha[cy0:cy1, cx0:cx1]
    blend = a * rgb[cy0:cy1, cx0:cx1] + (1.0 - a) * bg[rows, cols]
    frame[rows, cols] = to_uint8(blend)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round to uint8 through a coarse decimal rounding, so that last-bit differences between
    numpy's SIMD and scalar transcendental loops (which depend on array alignment) cannot
    flip a pixel: the same seed gives the same bytes in any process."""
    return np.clip(np.floor(np.round(img.astype(np.float64), 3) + 0.5), 0, 255).astype(np.uint8)


def encode_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Write (F, H, W, 3) uint8 RGB frames as H.264 yuv420p mp4 (one thread: same bytes)."""
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = max(1, int(round(fps)))
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
