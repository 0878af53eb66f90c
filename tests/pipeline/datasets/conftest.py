"""Fixtures for the adapter tests: the shared real data and tiny native-layout files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder next to the repository (see its README); skipped when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_formats(shared_data: Path) -> Path:
    """Real files in the datasets' own formats (real-formats/README.md, MANIFEST.tsv)."""
    folder = shared_data / "real-formats"
    if not folder.is_dir():
        pytest.skip(f"real-format files not found at {folder}")
    return folder


def write_video(path: Path, seconds: float = 1.0, fps: int = 10, size: tuple[int, int] = (32, 24),
                codec: str = "mpeg4") -> Path:
    """A tiny real video file (moving gradient) that PyAV and the features stage can decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(max(1, round(seconds * fps))):
            img = np.full((height, width, 3), (i * 17) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def make_video() -> Callable[..., Path]:
    return write_video
