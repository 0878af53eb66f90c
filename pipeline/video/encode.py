"""Writing small H.264 MP4 files with PyAV: test inputs and benchmark clips.

``index_coded_frames`` makes frames whose uniform grey level encodes the frame index
(``level = base + step * i``), so a decoded frame's mean tells which frame it was even after
lossy compression. ``textured_frames`` makes a moving texture whose decode cost resembles
real footage more than flat colour does.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_mp4(path: str | Path, frames_rgb: np.ndarray, fps: float, crf: int = 18,
              gop: int = 12) -> Path:
    """(N, H, W, 3) uint8 RGB -> H.264 MP4 (yuv420p; H and W must be even)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames, height, width, _ = frames_rgb.shape
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "g": str(gop), "preset": "ultrafast"}
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames_rgb[i]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def index_coded_frames(n_frames: int, height: int = 48, width: int = 64, base: int = 16,
                       step: int = 4) -> np.ndarray:
    """(N, H, W, 3) uint8 frames of uniform grey ``base + step * i``."""
    if base + step * (n_frames - 1) > 255:
        raise ValueError(f"{n_frames} frames do not fit grey levels {base}+{step}*i <= 255")
    levels = (base + step * np.arange(n_frames)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n_frames, height, width, 3)).copy()


def frame_index_of(frames_rgb: np.ndarray, base: int = 16, step: int = 4) -> np.ndarray:
    """Inverse of ``index_coded_frames``: (F, H, W, 3) -> (F,) frame indices."""
    means = frames_rgb.reshape(len(frames_rgb), -1).mean(1)
    return np.rint((means - base) / step).astype(np.int64)


def textured_frames(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(N, H, W, 3) uint8: a random texture panning by a few pixels per frame, plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height // 4 + 1, width // 4 + n_frames + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(base, 4, axis=0), 4, axis=1)  # blocky texture
    out = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        shift = 2 * i
        out[i] = texture[:height, shift : shift + width]
    noise = rng.integers(0, 12, size=out.shape, dtype=np.uint8)
    return out + noise
