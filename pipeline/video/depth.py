"""Depth video (``video_kind == "depth_mat"``) rendered to 3-channel frames for RGB teachers.

Input: a MATLAB ``.mat`` with ``d_depth`` uint16 (H, W, F) in millimetres (UTD-MHAD Kinect
depth, subject already segmented: background pixels are 0), frame i at time i / fps.

Rendering rule (``DEPTH_RULE``, recorded in provenance): per recording, ``near`` and ``far``
are the 1st and 99th percentiles of the non-zero depths over all its frames (widened to at
least ``MIN_SPAN_MM`` around their midpoint). A pixel with depth d > 0 gets intensity
``0.25 + 0.75 * clip((far - d) / (far - near), 0, 1)`` (near is bright, the farthest subject
pixel is still distinguishable from the background); d == 0 (no reading) gets 0. The
intensity, scaled to 0..255, is replicated to the three channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from comodo.pipeline.datasets.readers import load_mat_array
from comodo.stores.errors import InputDataError

DEPTH_KEY = "d_depth"
DEFAULT_DEPTH_FPS = 30.0
MIN_SPAN_MM = 200.0
FLOOR = 0.25
DEPTH_RULE = ("near/far = 1st/99th percentile of non-zero depth per recording (span >= 200 mm); "
              "I = 0.25 + 0.75*clip((far-d)/(far-near),0,1) for d>0, 0 for d=0; gray x3")


def load_depth(path: str) -> np.ndarray:
    """(F, H, W) uint16 depth in millimetres from a ``.mat`` holding ``d_depth`` (H, W, F)."""
    depth = load_mat_array(Path(path), DEPTH_KEY)  # names the file and what it holds instead
    if depth.ndim != 3 or depth.shape[2] == 0:
        raise InputDataError(f"depth video {path}: '{DEPTH_KEY}' has shape {depth.shape}; "
                             f"expected (H, W, F)")
    return np.ascontiguousarray(np.moveaxis(depth, 2, 0))


def depth_range(depth_mm: np.ndarray) -> tuple[float, float]:
    """(near, far) in millimetres for one recording, per the rule above."""
    valid = depth_mm[depth_mm > 0]
    if valid.size == 0:
        return 0.0, MIN_SPAN_MM
    near, far = (float(v) for v in np.percentile(valid, [1.0, 99.0]))
    if far - near < MIN_SPAN_MM:
        mid = (near + far) / 2
        near, far = mid - MIN_SPAN_MM / 2, mid + MIN_SPAN_MM / 2
    return near, far


def render_depth(depth_mm: np.ndarray, near: float, far: float) -> np.ndarray:
    """(F, H, W) depth in mm -> (F, H, W, 3) uint8, near bright, no reading black."""
    depth = depth_mm.astype(np.float32)
    level = FLOOR + (1.0 - FLOOR) * np.clip((far - depth) / (far - near), 0.0, 1.0)
    level = np.where(depth_mm > 0, level, 0.0)
    gray = np.rint(level * 255.0).astype(np.uint8)  # (F, H, W)
    return np.repeat(gray[..., None], 3, axis=-1)
